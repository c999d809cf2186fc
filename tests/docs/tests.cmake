# docs.api_reference: Doxygen over the areas whose every public name (icl namespaces outside
# detail) is documented, with warnings as errors (docs/api/Doxyfile.in, configured by the top-level
# CMakeLists.txt). An undocumented name or a doc error in those areas fails the test.
if(ICL_DOXYGEN)
  add_test(NAME docs.api_reference COMMAND ${ICL_DOXYGEN} ${PROJECT_BINARY_DIR}/docs/api/Doxyfile.check)
endif()

# docs.reproduction: every generated block of docs/reproduction.md (its tables and verdicts) agrees
# with the committed sweep results under docs/results/ (scripts/reproduction.py --check).
# docs.reproduction_selftest: the check can fail: a copy of the results with one value changed, or
# a copy of the document with one number changed, must be refused, and a rewrite must repair it.
if(ICL_PYTHON)
  add_test(NAME docs.reproduction
           COMMAND ${ICL_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/reproduction.py --check)
  add_test(NAME docs.reproduction_selftest
           COMMAND ${ICL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/reproduction_selftest.py
                   --work ${CMAKE_CURRENT_BINARY_DIR}/reproduction_selftest
                   --quick ${PROJECT_BINARY_DIR}/examples/figures_quick)
  # the quick sweeps' gathered CSVs come from example.fig* (examples/CMakeLists.txt)
  set_tests_properties(docs.reproduction_selftest PROPERTIES FIXTURES_REQUIRED icl_figures_quick)
endif()
