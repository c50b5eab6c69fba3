# evbus_add_criterion_test(NAME SOURCES... [LIBS ...] [TIMEOUT s] [LABELS ...])
# Builds one Criterion suite into its own executable and registers it with
# ctest. Every test gets a timeout so that a hung suite fails instead of
# stalling CI.
function(evbus_add_criterion_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE PkgConfig::CRITERION ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} --jobs 2)
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "EVBUS_BIN_DIR=${PROJECT_BINARY_DIR}/core;EVBUS_EXAMPLES_DIR=${PROJECT_BINARY_DIR}/examples;EVBUS_SRC_DIR=${PROJECT_SOURCE_DIR}")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
