# ctest's smoke run of evbus-bench-ingest: it must exit 0 and print a table
# row. Speed is not checked: CI machines are too noisy for that to mean
# anything.
execute_process(
  COMMAND ${BENCH} --quick --evbusd ${EVBUSD}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(err)
  message("stderr:\n${err}")
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "evbus-bench-ingest --quick exited with ${rc}")
endif()
if(NOT out MATCHES "evbus/redis" OR NOT out MATCHES "\n +256 B +10 +1 \\| +[0-9,]+ ")
  message(FATAL_ERROR "evbus-bench-ingest --quick did not print its table")
endif()
