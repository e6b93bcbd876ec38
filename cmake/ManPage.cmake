# Generates a man page from a program's --help (help2man's job, without the
# dependency): cmake -DPROG=path -DNAME=lucidctl -DSUMMARY="..." -DVERSION=0.1.0
#   -DSEE_ALSO="lucid-server(1)" -DOUT=lucidctl.1 -P ManPage.cmake
# For a program with subcommands (CLI11 lists them under "Subcommands:"),
# each subcommand's --help becomes its own section.
foreach(v PROG NAME SUMMARY VERSION OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "ManPage.cmake: ${v} is required")
  endif()
endforeach()

function(run_help out_var)
  execute_process(COMMAND ${PROG} ${ARGN} --help OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ManPage.cmake: ${PROG} ${ARGN} --help failed (${rc}): ${err}")
  endif()
  # The page names the program, not the build tree's path to it.
  string(REPLACE "${PROG}" "${NAME}" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# roff-safe text inside .nf/.fi: escape backslashes, protect leading . and '.
function(roff out_var text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

run_help(main)
string(TOUPPER "${NAME}" upper)
string(REPLACE "-" "\\-" name_roff "${NAME}")
set(page ".TH ${upper} 1 \"\" \"lucidnode ${VERSION}\" \"User Commands\"\n")
string(APPEND page ".SH NAME\n${name_roff} \\- ${SUMMARY}\n")
string(REGEX MATCH "Usage: [^\n]*" usage "${main}")
if(usage)
  string(REGEX REPLACE "^Usage: [^ ]* *" "" usage "${usage}")
  roff(usage "${usage}")
  string(APPEND page ".SH SYNOPSIS\n.B ${name_roff}\n${usage}\n")
endif()
roff(body "${main}")
string(APPEND page ".SH DESCRIPTION\n.nf\n${body}\n.fi\n")

# Subcommands: names are the first word of the indented lines after
# "Subcommands:" (CLI11's heading; older versions print "SUBCOMMANDS:").
string(FIND "${main}" "Subcommands:" at)
if(at EQUAL -1)
  string(FIND "${main}" "SUBCOMMANDS:" at)
endif()
if(at GREATER -1)
  string(SUBSTRING "${main}" ${at} -1 subs)
  string(REGEX MATCHALL "\n  [a-z][a-z0-9-]*" names "${subs}")
  foreach(n ${names})
    string(STRIP "${n}" n)
    run_help(sub ${n})
    roff(sub "${sub}")
    string(APPEND page ".SH \"${upper} ${n}\"\n.nf\n${sub}\n.fi\n")
  endforeach()
endif()
if(DEFINED SEE_ALSO)
  string(APPEND page ".SH \"SEE ALSO\"\n${SEE_ALSO}\n")
endif()
file(WRITE "${OUT}" "${page}")
