// MPLLower: under construction
