#!/usr/bin/python3
# connprof_diff.py: which functions make the difference between two scripts/bench/connprof.sh
# runs. Usage: connprof_diff.py BEFORE_DIR AFTER_DIR zt1|zt2. Prints, per connection and corrected
# for the idle interval as connprof.py does, the functions whose self instructions differ most,
# and the callers of malloc/calloc/realloc/operator new whose call counts differ most. Functions
# renamed between the two trees show as one line gone and one line new.
import re,sys,collections
def parse(p):
    names={}; self_=collections.Counter(); allocby=collections.Counter()
    fn=None; skip=False; cfn=None
    def nm(kind,line):
        m=re.match(kind+r"=\((\d+)\)(?: (.*))?",line)
        if m.group(2): names[m.group(1)]=m.group(2)
        return names.get(m.group(1),'?')
    for line in open(p,errors='replace'):
        line=line.rstrip('\n')
        if line.startswith('fn='): fn=nm('fn',line); continue
        if line.startswith('cfn='): cfn=nm('cfn',line); continue
        if line.startswith('calls='):
            skip=True
            if cfn in ('malloc','calloc','realloc') or (cfn or '').startswith('operator new'): allocby[fn]+=int(line[6:].split()[0])
            continue
        if line and (line[0].isdigit() or line[0] in '+-*'):
            if skip: skip=False; continue
            parts=line.split()
            if len(parts)>=2 and fn: self_[fn]+=int(parts[1])
    return self_,allocby
def t(b): return {k:float(v) for k,v in (l.split('=') for l in open(f'{b}/times.txt').read().split())}
DIRS={'before':sys.argv[1],'main':sys.argv[2]}
side=sys.argv[3]
R={};A={}
for b in ('before','main'):
    tt=t(DIRS[b]); n=int(open(DIRS[b]+'/n.txt').read()); f=tt['conns_s']/tt['idle_s']
    c,ca=parse(f'{DIRS[b]}/{side}.callgrind'); i,ia=parse(f'{DIRS[b]}/{side}.idle.callgrind')
    R[b]={k:(c[k]-i[k]*f)/n for k in set(c)|set(i)}
    A[b]={k:(ca[k]-ia[k]*f)/n for k in set(ca)|set(ia)}
for lab,D in (('self Ir/conn',R),('malloc calls/conn by caller',A)):
    print(side,lab,'totals',round(sum(D['before'].values()),1),round(sum(D['main'].values()),1))
    keys=set(D['before'])|set(D['main'])
    for k in sorted(keys,key=lambda k:-abs(D['main'].get(k,0)-D['before'].get(k,0)))[:14]:
        print(f"  {D['before'].get(k,0):8.1f} {D['main'].get(k,0):8.1f} {D['main'].get(k,0)-D['before'].get(k,0):+8.1f}  {k[:110]}")
