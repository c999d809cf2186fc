icl_add_python_test(io_safetensors io_safetensors.py)
icl_add_python_test(io_models io_models.py)
