def preprocess(x):
    return x
