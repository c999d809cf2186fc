# Configure and build a parent project that add_subdirectory()s icl, then require that CTest
# there lists exactly the parent's own test: none of icl's tests, examples or benchmarks leak.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/parent -B ${WORK_DIR}
                        -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX} -DICL_SOURCE_DIR=${SOURCE_DIR}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the parent project failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the parent project failed")
endif()
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N WORKING_DIRECTORY ${WORK_DIR}
                OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
if(NOT listing MATCHES "Total Tests: 1")
  message(FATAL_ERROR "parent project sees icl's tests:\n${listing}")
endif()
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} --output-on-failure WORKING_DIRECTORY ${WORK_DIR}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the parent's own test failed")
endif()
if(EXISTS ${WORK_DIR}/icl/tests OR EXISTS ${WORK_DIR}/icl/bench OR EXISTS ${WORK_DIR}/icl/examples)
  message(FATAL_ERROR "icl's tests, benchmarks or examples were configured in a parent project")
endif()
message(STATUS "add_subdirectory parent: only its own test is visible")
