# Stand-in for the LoFtool VEP plugin (github.com/Ensembl/VEP_plugins, release/98):
# annotate_variants reads LoFtool_scores.txt beside this file and adds LoFtool=<percentile>
# for the gene a variant falls in.
package LoFtool;
1;
