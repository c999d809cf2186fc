icl_add_compile_fail_test(cf_construct_mul_sizes compile_fail/construct_mul_sizes.cpp
                          "icl::construct::mul: the target range w must have a\\*c rows")
icl_add_compile_fail_test(cf_construct_mul_width compile_fail/construct_mul_width.cpp
                          "icl::construct::mul: every row range must lie inside the width")
icl_add_compile_fail_test(cf_construct_div_overlap compile_fail/construct_div_overlap.cpp
                          "icl::construct::div: the target range w must be disjoint")
icl_add_compile_fail_test(cf_construct_mov_sizes compile_fail/construct_mov_sizes.cpp
                          "icl::construct::mov: the source and target ranges must have the same size")
