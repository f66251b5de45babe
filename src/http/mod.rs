//! The HTTP surface. Handlers parse, authorise, make one domain call and render;
//! no SQL below this folder.

pub mod api;
pub mod deadline;
pub mod methods;
pub mod portal;
