icl_add_python_test(train_optim train_optim.py)
