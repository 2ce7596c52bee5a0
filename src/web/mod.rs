//! Browser drivers.
