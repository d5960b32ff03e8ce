// MPLCompiler: under construction
