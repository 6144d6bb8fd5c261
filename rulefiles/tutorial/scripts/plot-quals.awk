# Stand-in for the tutorial's scripts/plot-quals.py (a matplotlib histogram of the QUAL column):
# reads a VCF, writes an SVG histogram of the variant qualities in bins of 10.
BEGIN { FS = "\t"; q = "\"" }
/^#/ { next }
{ b = int($6 / 10); n[b]++; if (b > max) max = b; if (n[b] > top) top = n[b]; calls++ }
END {
    w = 30 * (max + 1) + 60
    print "<svg xmlns=" q "http://www.w3.org/2000/svg" q " width=" q w q " height=" q "240" q ">"
    print "  <title>" calls " calls: QUAL histogram</title>"
    for (b = 0; b <= max; b++) {
        h = top ? 180 * n[b] / top : 0
        printf "  <rect x=%s%d%s y=%s%.1f%s width=%s26%s height=%s%.1f%s><title>QUAL %d-%d: %d</title></rect>\n", \
            q, 40 + 30 * b, q, q, 200 - h, q, q, q, q, h, q, 10 * b, 10 * b + 9, n[b] + 0
    }
    print "  <text x=" q "40" q " y=" q "230" q ">QUAL</text>"
    print "</svg>"
}
