# docs.api_reference: Doxygen over the areas whose every public name (icl namespaces outside
# detail) is documented, with warnings as errors (docs/api/Doxyfile.in, configured by the top-level
# CMakeLists.txt). An undocumented name or a doc error in those areas fails the test.
if(ICL_DOXYGEN)
  add_test(NAME docs.api_reference COMMAND ${ICL_DOXYGEN} ${PROJECT_BINARY_DIR}/docs/api/Doxyfile.check)
endif()
