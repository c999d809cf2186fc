# Sweeps (docs/sweeps.md): the cell runner's kill-and-resume, signal, thread and refusal test, run
# against the real icl_cell (examples/icl_cell/). icl_cell is defined after tests/ is processed, so
# the guard is the option that builds it, not if(TARGET).
if(ICL_PYTHON AND ICL_BUILD_EXAMPLES)
  add_test(NAME sweep.crash
           COMMAND ${ICL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_crash.py --exe $<TARGET_FILE:icl_cell>
                   --work ${CMAKE_CURRENT_BINARY_DIR}/sweep/crash)
  set_tests_properties(sweep.crash PROPERTIES TIMEOUT 900)
endif()
