# Sweeps (docs/sweeps.md), run by Debian's python3:
#   sweep.driver        tests/sweep/test_driver.py against tests/sweep/fake_cell.py, a stand-in runner
#   sweep.icl_cell      the driver with the real cell runner (target icl_cell) on tests/sweep/tiny.toml:
#                       plan checks the cells; -P 2 -T 1 and -P 1 -T 2 gather the same bytes
#   sweep.crash         the real icl_cell killed (SIGKILL) at random moments and resumed, signals,
#                       thread independence, refusal of a changed run (tests/sweep/test_crash.py)
#   sweep.slurm_script, sweep.slurm   the SLURM executor (tests/sweep/slurm.cmake)
if(ICL_PYTHON)
  add_test(NAME sweep.driver COMMAND ${ICL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_driver.py)
  set_tests_properties(sweep.driver PROPERTIES TIMEOUT 600)

  # examples/ (which defines icl_cell) is added after tests/, so the target is looked for once the
  # top-level directory has been read (a deferred call: its arguments would be expanded then too).
  function(icl_sweep_add_icl_cell_test)
    if(TARGET icl_cell)
      add_test(NAME sweep.icl_cell
               COMMAND ${ICL_PYTHON} ${PROJECT_SOURCE_DIR}/tests/sweep/test_driver.py
                       --runner $<TARGET_FILE:icl_cell> RealCell)
      set_tests_properties(sweep.icl_cell PROPERTIES TIMEOUT 900)
      add_test(NAME sweep.crash
               COMMAND ${ICL_PYTHON} ${PROJECT_SOURCE_DIR}/tests/sweep/test_crash.py
                       --exe $<TARGET_FILE:icl_cell> --work ${PROJECT_BINARY_DIR}/tests/sweep/crash)
      set_tests_properties(sweep.crash PROPERTIES TIMEOUT 900)
    endif()
  endfunction()
  cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL icl_sweep_add_icl_cell_test)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/slurm.cmake)
    include(${CMAKE_CURRENT_LIST_DIR}/slurm.cmake)
  endif()
endif()

# docs/sweeps.md §3 holds the cell runner's settings table as `icl_cell --print-settings` prints it.
function(icl_sweep_add_settings_doc_test)
  if(TARGET icl_cell)
    add_test(NAME sweep.settings_doc
             COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:icl_cell> -DDOC=${PROJECT_SOURCE_DIR}/docs/sweeps.md
                     -P ${PROJECT_SOURCE_DIR}/tests/sweep/settings_doc.cmake)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL icl_sweep_add_settings_doc_test)
