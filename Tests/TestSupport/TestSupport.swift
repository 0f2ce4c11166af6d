// Shared helpers for the test targets (tolerance checks, reference math, fixture loading).
import AdapterCore
