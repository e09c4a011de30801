"""Network building blocks, sized from the data shape. Imports nothing of gentool."""
