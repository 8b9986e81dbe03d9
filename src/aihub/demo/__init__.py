"""Synthetic but realistic meter and weather data, for the demo and the benchmarks."""
