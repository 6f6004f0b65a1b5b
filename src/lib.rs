//! The widget (placeholder while the skeleton is laid).
