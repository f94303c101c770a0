//! The compatibility matrix (`fleetstorm check --compat`): placeholder, being built.

use crate::config::Profile;

/// What one check found.
#[derive(Debug, serde::Serialize)]
pub struct CompatMatrix {}

/// Try each capability against the profile's target.
pub fn matrix(_profile: &Profile) -> Result<CompatMatrix, String> {
    Err("the compatibility matrix is not built yet".into())
}

/// The matrix as a text table.
pub fn render(_m: &CompatMatrix) -> String {
    String::new()
}
