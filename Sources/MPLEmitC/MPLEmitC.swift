// MPLEmitC: under construction
