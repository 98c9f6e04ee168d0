"""stylecam.benchmarks: latency per device, model, precision and resolution."""
