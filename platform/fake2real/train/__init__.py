"""Models, methods, mixtures, and one stage of training on Ray Train."""
