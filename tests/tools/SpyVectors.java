/* SpyVectors -- spymemcached's own placement, for tests/unit/test_hash.c.
 *
 *   javac -cp /usr/share/java/spymemcached.jar -d DIR tests/tools/SpyVectors.java
 *   java -cp /usr/share/java/spymemcached.jar:DIR net.spy.memcached.SpyVectors hash
 *   java ... SpyVectors mod|ketama|native|weighted host:port:weight ...
 *
 * "hash" prints NATIVE_HASH and KETAMA_HASH of each test key; the others
 * build ArrayModNodeLocator (NATIVE_HASH; a server of weight k listed k
 * times), KetamaNodeLocator (KETAMA_HASH, or NATIVE_HASH as the builder's
 * CONSISTENT leaves it) or KetamaNodeLocator with a weights map, over MemcachedNodes that are only a java.lang.reflect.Proxy
 * (no connection), and print per key the server index of getPrimary and
 * of each node getSequence gives: the order MemcachedConnection tries them
 * in with FailureMode.Redistribute.  In package net.spy.memcached to read
 * the locator's TreeMap (getKetamaNodes is protected).
 */
package net.spy.memcached;

import java.lang.reflect.*;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class SpyVectors {
    static MemcachedNode node(final InetSocketAddress a, final int idx) {
        return (MemcachedNode) Proxy.newProxyInstance(SpyVectors.class.getClassLoader(),
            new Class<?>[] { MemcachedNode.class }, new InvocationHandler() {
                public Object invoke(Object p, Method m, Object[] args) {
                    switch (m.getName()) {
                    case "getSocketAddress": return a;
                    case "hashCode": return System.identityHashCode(p);
                    case "equals": return p == args[0];
                    case "toString": return "n" + idx;
                    case "isActive": return true;
                    }
                    throw new UnsupportedOperationException(m.getName());
                }
            });
    }
    static String hex(byte[] b) { StringBuilder s = new StringBuilder(); for (byte x : b) s.append(String.format("%02x", x & 0xff)); return s.toString(); }
    static String cstr(String k) {
        if (k.length() == 250 && k.replace("x", "").isEmpty()) return "NULL /* 250 x */";
        StringBuilder s = new StringBuilder("\"");
        boolean esc = false;
        for (byte x : k.getBytes(StandardCharsets.UTF_8)) {
            int c = x & 0xff;
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                if (esc && Character.digit(c, 16) >= 0) s.append("\"\"");
                s.append((char) c); esc = false;
            } else { s.append(String.format("\\x%02x", c)); esc = true; }
        }
        return s.append("\"").toString();
    }
    static List<String> keys() {
        List<String> k = new ArrayList<>(Arrays.asList("k1", "foo", "name", "product_count", "session:abc", "0", "a", "b",
            "hello", "KEY", "\u00e9", "caf\u00e9", "\u65e5\u672c\u8a9e", "\ud83d\ude00", "x\ud83d\ude00y\u00e9z", "\u07ff\u0800\uffff",
            "polygenelubricants", "Aa", "BB", "user:42", "cache/page/index.html"));
        StringBuilder x = new StringBuilder(); for (int i = 0; i < 250; i++) x.append('x'); k.add(x.toString());
        for (int i = 0; i < 24; i++) k.add("key:" + (i * 7919));
        return k;
    }
    public static void main(String[] av) throws Exception {
        String what = av[0];
        List<String> ks = keys();
        if (what.equals("hash")) {
            for (String k : ks)
                System.out.printf("    { %s, %d, 0x%08xu, 0x%08xu },%n", cstr(k), k.getBytes(StandardCharsets.UTF_8).length,
                    DefaultHashAlgorithm.NATIVE_HASH.hash(k), DefaultHashAlgorithm.KETAMA_HASH.hash(k));
            return;
        }
        // av: mode host:port:weight ...
        List<MemcachedNode> nodes = new ArrayList<>();
        List<Integer> idx = new ArrayList<>();
        Map<InetSocketAddress, Integer> weights = new HashMap<>();
        for (int i = 1; i < av.length; i++) {
            String[] p = av[i].split(":");
            InetSocketAddress a = new InetSocketAddress(p[0], Integer.parseInt(p[1]));
            int w = Integer.parseInt(p[2]);
            weights.put(a, w);
            int reps = what.equals("mod") ? w : 1;
            for (int r = 0; r < reps; r++) { nodes.add(node(a, i - 1)); idx.add(i - 1); }
        }
        NodeLocator loc;
        if (what.equals("mod")) loc = new ArrayModNodeLocator(nodes, DefaultHashAlgorithm.NATIVE_HASH);
        else if (what.equals("ketama")) loc = new KetamaNodeLocator(nodes, DefaultHashAlgorithm.KETAMA_HASH);
        else if (what.equals("native")) loc = new KetamaNodeLocator(nodes, DefaultHashAlgorithm.NATIVE_HASH);
        else loc = new KetamaNodeLocator(nodes, DefaultHashAlgorithm.KETAMA_HASH, KetamaNodeKeyFormatter.Format.SPYMEMCACHED, weights);
        if (loc instanceof KetamaNodeLocator) {
            TreeMap<Long, MemcachedNode> ring = ((KetamaNodeLocator) loc).getKetamaNodes();
            Map<String, Integer> cnt = new TreeMap<>();
            for (MemcachedNode n : ring.values()) cnt.merge(n.toString(), 1, Integer::sum);
            System.out.println("/* points: " + ring.size() + " " + cnt + " key0=" + new net.spy.memcached.util.DefaultKetamaNodeLocatorConfiguration().getKeyForNode(nodes.get(0), 0) + " */");
        }
        for (String k : ks) {
            StringBuilder s = new StringBuilder();
            int cnt = 1;
            s.append(nodes.indexOf(loc.getPrimary(k)) >= 0 ? idx.get(nodes.indexOf(loc.getPrimary(k))) : -9);
            for (Iterator<MemcachedNode> it = loc.getSequence(k); it.hasNext(); cnt++) s.append(", ").append(idx.get(nodes.indexOf(it.next())));
            System.out.printf("    { %s, %d, %d, { %s } },%n", cstr(k), k.getBytes(StandardCharsets.UTF_8).length, cnt, s);
        }
    }
}
