// MPLFrontend: under construction
