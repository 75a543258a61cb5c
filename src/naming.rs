//! PLACEHOLDER: filled in by the labels/naming/lock work.
