# The SLURM executor's tests (docs/sweeps.md, "What is tested"); included from
# tests/sweep/tests.cmake (inside its if(ICL_PYTHON)).
#
# sweep.slurm_script: the executor without a cluster (sbatch options, --dry-run, the batch script
# run by bash with a stand-in runner). Fast; needs nothing but bash and python3.
add_test(NAME sweep.slurm_script
         COMMAND ${ICL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_slurm_script.py)
set_tests_properties(sweep.slurm_script PROPERTIES TIMEOUT 120)

# sweep.slurm: the real icl_cell and tools/icl_sweep.py against a real one-node SLURM cluster
# that the test starts in a temporary folder and stops on every path (root, slurm-wlm and munge
# needed; without them it fails, naming them). It also runs the quick versions of the four figure
# sweeps (sweeps/fig*.toml) through SLURM and through the local executor and compares their
# gathered.csv byte for byte. About 1-2 minutes (73 s on the 2-core development machine, 40 s of
# it the figure sweeps); the test gives itself 480 s and
# stops its cluster before CTest's TIMEOUT would kill it (if it is killed anyway, its watcher
# process stops the cluster). examples/ (which defines icl_cell) is added after tests/, so the
# target is looked for once the top-level directory has been read (a deferred call).
function(icl_sweep_add_slurm_test)
  if(TARGET icl_cell AND EXISTS ${PROJECT_SOURCE_DIR}/tools/icl_sweep.py)
    add_test(NAME sweep.slurm
             COMMAND ${ICL_PYTHON} ${PROJECT_SOURCE_DIR}/tests/sweep/test_slurm.py
                     --runner $<TARGET_FILE:icl_cell>
                     --driver ${PROJECT_SOURCE_DIR}/tools/icl_sweep.py
                     --work ${PROJECT_BINARY_DIR}/tests/sweep/slurm)
    set_tests_properties(sweep.slurm PROPERTIES TIMEOUT 600 RESOURCE_LOCK slurm)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL icl_sweep_add_slurm_test)
