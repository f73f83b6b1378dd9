# Installs the already-built athanor into WORK_DIR/prefix and builds cmake_import/project
# against it with find_package(athanor CONFIG REQUIRED); then runs the program.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${ATHANOR_BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
# The installed command-line tool runs.
if(EXISTS ${ATHANOR_BINARY_DIR}/tools)
  execute_process(COMMAND ${WORK_DIR}/prefix/bin/athanor-schema --help RESULT_VARIABLE rc OUTPUT_VARIABLE out)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "athanor-schema reflect URL")
    message(FATAL_ERROR "the installed athanor-schema failed: ${rc} ${out}")
  endif()
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${ATHANOR_SOURCE_DIR}/tests/cmake_import/project
                        -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                        -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
                        "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}"
                        "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "consumer ok")
  message(FATAL_ERROR "the consumer failed: ${rc} ${out}")
endif()
message(STATUS "consumer: ${out}")
