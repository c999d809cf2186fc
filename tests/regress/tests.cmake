# Differential test of the online regressors against numpy / scikit-learn (docs/regress.md §5).
icl_add_python_test(regress_sklearn regress_sklearn.py)
