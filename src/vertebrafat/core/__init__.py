"""The ground floor: errors, array types, the label table, the water-fat image, the measurement
schema and the model card. Imports nothing else from vertebrafat."""
