// MPLStep: under construction
