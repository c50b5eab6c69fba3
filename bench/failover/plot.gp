# Draws a bench/failover timeline. Usage (from the repository's root):
#   build/bench/failover/evbus-bench-failover --out DIR
#   gnuplot -c bench/failover/plot.gp DIR OUT     # writes OUT.png and OUT.svg
# DIR/timeline.dat: per 100 ms, as rates per second: time, offered, accepted,
# delivered in us-east-1, delivered in us-west-2, refused by us-east-1, and
# pending (acked, not yet delivered) at the end of the step.
# DIR/marks.gp: a band per outage and a line per step of the scenario.
if (ARGC < 2) { print "usage: gnuplot -c plot.gp DIR OUT"; exit status 2 }
dir = ARG1
out = ARG2
data = dir . '/timeline.dat'

set xlabel 'seconds since the load started'
set ylabel 'events per second (100 ms steps)'
set y2label 'pending events (acked, not yet delivered)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid ytics lc rgb '#dddddd'
set key outside below horizontal
set format y '%.0s%c'
set format y2 '%.0s%c'
load dir . '/marks.gp'

set terminal pngcairo size 1200,560 font ',10'
set output out . '.png'
plot data using 1:2 with lines lw 1 dt 3 lc rgb '#777777' title 'offered', \
     ''   using 1:3 with lines lw 1 lc rgb '#2ca02c' title 'accepted (acked durable)', \
     ''   using 1:4 with lines lw 2 lc rgb '#1f77b4' title 'delivered us-east-1 (primary)', \
     ''   using 1:5 with lines lw 2 lc rgb '#ff7f0e' title 'delivered us-west-2', \
     ''   using 1:6 with lines lw 1 lc rgb '#d62728' title 'refused by us-east-1 (retried)', \
     ''   using 1:7 axes x1y2 with lines lw 1 dt 2 lc rgb '#000000' title 'pending (right axis)'

set terminal svg size 1200,560 dynamic font 'sans,10'
set output out . '.svg'
replot
set output
