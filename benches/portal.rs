//! Portal benchmark (being written).
fn main() {}
