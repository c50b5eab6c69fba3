# ctest's smoke run of a benchmark: `BENCH --quick [ARGS] --evbusd EVBUSD`
# must exit 0 and print every table row in ROWS: regular expressions
# separated by "@@" (a ;-list would be split by add_test), each matched at the
# start of a line. ARGS (optional) are more options, separated by spaces.
# Speed is not checked: CI machines are too noisy for that to mean anything.
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(
  COMMAND ${BENCH} --quick ${args} --evbusd ${EVBUSD}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(err)
  message("stderr:\n${err}")
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BENCH} --quick exited with ${rc}")
endif()
string(REPLACE "@@" ";" rows "${ROWS}")
foreach(row ${rows})
  if(NOT out MATCHES "\n${row}")
    message(FATAL_ERROR "${BENCH} --quick did not print a table row matching '${row}'")
  endif()
endforeach()
