//! Tests of the domain events: see the module header.
