#!/usr/bin/env bash
# check-citations.sh: comments and docs cite files inside the repository (`docs/...`), never the
# read-only notes the project was started from, which are not part of it. Fails (exit 1, one line
# per hit) when a tracked file cites SPEC.md, DESIGN.md or one of the reference notes
# (ztunnel-behaviour, reliability, ecosystem, style-anchors, perf-anchors) by their old names, or
# points into `../shared`. Their replacements keep the same section numbers:
#   docs/contract.md, docs/design.md, docs/ztunnel-reference.md, docs/reliability.md,
#   docs/ecosystem.md, docs/style.md, docs/perf-anchors.md.
# Not checked: this script and its test (tests/scripts/check_citations.sh), which hold bad
# citations on purpose.
# One exception: `../shared/reference/protos` is where the optional proto-compatibility test and the
# agent scenario look for Istio's .proto files (a data location, overridable with
# ZT_REFERENCE_PROTOS), not a citation.
# It also fails when a citation of docs/X.md names a section X does not have (`§N`, `§N.M`, `§6a`,
# or a quoted heading such as docs/design.md "Threads"), so renumbering a note breaks loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

git ls-files -z | perl -0 -ne '
    chomp;
    my $f = $_;
    next if $f =~ m{^build/} || $f eq "scripts/check-citations.sh" || $f eq "tests/scripts/check_citations.sh";
    next unless -f $f;
    open(my $fh, "<", $f) or next;
    local $/;
    my $text = <$fh>;
    close $fh;
    next if $text =~ /\x00/;    # binary
    my @lines = split /\n/, $text, -1;
    for my $i (0 .. $#lines) {
        my $l = $lines[$i];
        my $next = $i < $#lines ? $lines[$i + 1] : "";
        (my $scan = $l) =~ s{\.\./shared/reference/protos}{}g;    # the one allowed path
        my @why;
        push @why, "SPEC.md"                if $scan =~ /(?<![\w\/.-])SPEC(?:\.md| §|\x27s\b)|\bthe SPEC\b/;
        push @why, "DESIGN.md"              if $scan =~ /(?<![\w\/.-])DESIGN(?:\.md| "|\x27s\b)/;
        push @why, "ztunnel-behaviour.md"   if $scan =~ /ztunnel-behaviour/;
        push @why, "style-anchors.md"       if $scan =~ /style-anchors/;
        push @why, "perf-anchors.md"        if $scan =~ /(?<![\w\/.-])perf-anchors/;
        push @why, "reliability.md"         if $scan =~ /(?<![\w\/.-])reliability(?:\.md|[ \t]+(?:§|[A-F]\d))/
            || ($scan =~ /(?<![\w\/.-])reliability[ \t]*$/ && $next =~ /^[ \t]*(?:\/\/|#)[ \t]*§/);
        push @why, "ecosystem.md"           if $scan =~ /(?<![\w\/.-])ecosystem(?:\.md|[ \t]+§)/
            || ($scan =~ /(?<![\w\/.-])ecosystem[ \t]*$/ && $next =~ /^[ \t]*(?:\/\/|#)[ \t]*§/);
        push @why, "../shared"              if $scan =~ m{\.\./shared\b|shared folder};
        next unless @why;
        printf "%s:%d: cites %s outside the repository (use docs/...): %s\n",
            $f, $i + 1, join(", ", @why), substr($l =~ s/^\s+//r, 0, 100);
        $main::hits++;
    }
    # A citation of docs/X.md must name sections X has (`## N.`, `### N.M`, `### 6a.`) or, for
    # docs/design.md and docs/architecture.md, a heading in quotes.
    while ($text =~ m{(?<![\w/.-])(docs/(?:contract|design|architecture|ztunnel-reference|reliability|ecosystem|style|perf-anchors)\.md)([^\n]*(?:\n[ \t]*(?://|\#)[ \t]*§[^\n]*)?)}g) {
        my ($doc, $rest) = ($1, $2);
        my $line = 1 + (() = substr($text, 0, $-[0]) =~ /\n/g);
        $rest =~ s/\n[ \t]*(?:\/\/|\#)[ \t]*/ /;
        $rest = substr($rest, 0, 90);
        $rest =~ s/(?<![\w\/.-])docs\/\w[\w-]*\.md.*//;    # stop at the next cited file
        my $heads = ($main::heads{$doc} //= do {
            my %h;
            if (open(my $d, "<", $doc)) {
                local $/ = "\n";
                while (my $hl = <$d>) {
                    $h{$1} = 1 if $hl =~ /^#{2,3} (\d+[a-z]?)[. ]/;
                    $h{"$1.$2"} = 1 if $hl =~ /^#{2,3} (\d+)\.(\d+)[. ]/;
                    $h{"\"$1\""} = 1 if $hl =~ /^#{2,3} (.*?)\s*$/;
                }
            }
            \%h;
        });
        my @refs = $rest =~ /§\s*(\d+[a-z]?(?:\.\d+)?)(?:[–-](\d+(?:\.\d+)?))?/g;
        push @refs, $1 if $rest =~ /^(?:\x27s)?\s*("[A-Z][^"]*")/;
        for my $r (grep { defined } @refs) {
            next if $heads->{$r};
            printf "%s:%d: cites %s %s, which has no such section\n", $f, $line, $doc, $r =~ /^"/ ? $r : "§$r";
            $main::hits++;
        }
    }
    END { exit($main::hits ? 1 : 0) }
' && exit 0
echo "check-citations: cite docs/... (same section numbers as the old notes), and only sections that exist" >&2
exit 1
