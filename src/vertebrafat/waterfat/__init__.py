"""Water-fat quantities: fat fraction from water and fat images."""
