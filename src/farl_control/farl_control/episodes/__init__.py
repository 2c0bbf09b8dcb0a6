"""Episodes: the monitor node and the bookkeeping (reward, cost, success, counts) it runs."""
