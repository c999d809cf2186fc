icl_add_compile_fail_test(cf_task_dim_zero compile_fail/data_task_dim_zero.cpp
                          "the input dimension D must be at least 1")
