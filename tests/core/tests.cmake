icl_add_compile_fail_test(cf_heap_matrix_int compile_fail/core_heap_matrix_int.cpp
                          "icl::HeapMatrix: Scalar must be a floating-point type")
