//! Alert rules over sampled metrics.
