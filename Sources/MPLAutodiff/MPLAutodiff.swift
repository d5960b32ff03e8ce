// MPLAutodiff: under construction
