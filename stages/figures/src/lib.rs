//! Figures of the paper drawn with plotters (SVG and PNG).
