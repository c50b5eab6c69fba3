# ctest's smoke run of evbus-bench-dispatch: it must exit 0 and print a table
# row for each sink. Speed is not checked: CI machines are too noisy for that
# to mean anything.
execute_process(
  COMMAND ${BENCH} --quick --evbusd ${EVBUSD}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(err)
  message("stderr:\n${err}")
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "evbus-bench-dispatch --quick exited with ${rc}")
endif()
foreach(sink null jsonl "jsonl\\+fsync")
  if(NOT out MATCHES "\n${sink} +256 B +100 +1 \\| +[0-9,]+ ")
    message(FATAL_ERROR "evbus-bench-dispatch --quick did not print its table row for ${sink}")
  endif()
endforeach()
