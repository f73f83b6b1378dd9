# athanor_add_module(<name> SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...)
# Defines library athanor_<name> with alias athanor::<name>, EXPORT_NAME <name>, its own public
# include folder <name>/include, our warning flags, and install rules.
function(athanor_add_module name)
  cmake_parse_arguments(M "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target athanor_${name})
  add_library(${target} ${M_SOURCES})
  add_library(athanor::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME athanor_${name}
                                             POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  athanor_warnings(${target})
  if(ATHANOR_INSTALL)
    install(TARGETS ${target} EXPORT athanorTargets
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endfunction()

# Warnings are errors in our own code. GCC 12's -Wrestrict misfires on std::string operator+
# chains at -O2 (GCC PR 105651, fixed in 13), so that one diagnostic is off there.
function(athanor_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror
    $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
endfunction()
