# The SLURM executor's tests (docs/sweeps.md, "What is tested"); included from
# tests/sweep/tests.cmake.
#
# sweep.slurm_script: the executor without a cluster (sbatch options, --dry-run, the batch script
# run by bash with a stand-in runner). Fast; needs nothing but bash and python3.
add_test(NAME sweep.slurm_script
         COMMAND ${ICL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_slurm_script.py)
set_tests_properties(sweep.slurm_script PROPERTIES TIMEOUT 120)

# sweep.slurm: the real icl_cell and tools/icl_sweep.py against a real one-node SLURM cluster
# that the test starts in a temporary folder and stops on every path (root, slurm-wlm and munge
# needed; without them it fails, naming them). About 1-2 minutes; the test gives itself 480 s
# and stops its cluster before CTest's TIMEOUT would kill it.
#
# tests/ is configured before examples/ (top-level CMakeLists.txt), so if(TARGET icl_cell) is
# still false here: the guard is the examples option and the runner's source; the target's file
# is a generator expression, resolved once every target exists.
if(ICL_BUILD_EXAMPLES AND EXISTS ${PROJECT_SOURCE_DIR}/examples/icl_cell/main.cpp
   AND EXISTS ${PROJECT_SOURCE_DIR}/tools/icl_sweep.py)
  add_test(NAME sweep.slurm
           COMMAND ${ICL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_slurm.py
                   --runner $<TARGET_FILE:icl_cell>
                   --driver ${PROJECT_SOURCE_DIR}/tools/icl_sweep.py
                   --work ${CMAKE_CURRENT_BINARY_DIR}/sweep/slurm)
  set_tests_properties(sweep.slurm PROPERTIES TIMEOUT 600 RESOURCE_LOCK slurm RUN_SERIAL TRUE)
endif()
