"""The PyTorch definition of Cromwell VL-JEPA (training, and the reference for the runtime).

Import the pieces from their modules (`engine.model.vljepa.VLJEPA`, ...). This file imports
nothing, so torch-free code (the runtime, the exporter) can use `engine.model.gguf_names`
without pulling torch in.
"""
