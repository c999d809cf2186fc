# nn: compile-fail tests for the static_asserts and the PyTorch differential tests.
icl_add_compile_fail_test(cf_nn_mha_heads compile_fail/nn_mha_heads.cpp
                          "H must be divisible by the number of heads M")
icl_add_python_test(nn_torch nn_torch.py)
