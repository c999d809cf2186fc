icl_add_compile_fail_test(cf_model_predictor_temporary compile_fail/metrics_model_predictor_temporary.cpp
                          "holds the model by reference")
icl_add_compile_fail_test(cf_model_predictor_wrong_d compile_fail/metrics_model_predictor_wrong_d.cpp
                          "D differs from the model's input dimension")
