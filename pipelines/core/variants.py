"""The names of the model variants compress makes: the vocabulary that the compress and export
blocks of params.yaml, the compress stage and the reports share."""

# Float variants the compress stage can make, and the int8 copy of each (dynamic quantization).
INT8_OF = {"full": "int8", "pruned": "pruned_int8", "student": "student_int8"}
# The order of the chain, in which reports and tables list the variants.
VARIANT_ORDER = ("full", "pruned", "student", "int8", "pruned_int8", "student_int8", "ort_fp32", "ort_int8")
# What export can serve: transformers folders and int8 folders load in the pyfunc model; the ONNX
# Runtime variants are measured only (the served model runs PyTorch).
EXPORTABLE = ("full", "int8", "pruned", "pruned_int8", "student", "student_int8")
