//! The local Kubernetes API emulation. PLACEHOLDER.
