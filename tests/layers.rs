//! Layered images (issue 6): written by the layers test helper.
